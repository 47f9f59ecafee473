//! Training on any backend: softmax cross-entropy with soft targets and the Adam optimiser.
//! The only place weight gradients are asked for (explaining never does).

use crate::backward::{BackwardSpec, RectifierRule, Stop};
use crate::model::Model;
use gradcam_core::{Backend, Error, HostTensor, Result, Shape};

/// Mean softmax cross-entropy of `logits` (`n×c`, row-major) against target distributions
/// `targets` (`n×c`, rows summing to 1), and its gradient with respect to the logits,
/// `(softmax(z) − t)/n`.
pub fn softmax_cross_entropy(logits: &[f32], targets: &[f32], c: usize) -> Result<(f32, Vec<f32>)> {
    if c == 0
        || !logits.len().is_multiple_of(c)
        || logits.len() != targets.len()
        || logits.is_empty()
    {
        return Err(Error::shape(
            "softmax_cross_entropy",
            format!(
                "{} logits and {} targets for {c} classes",
                logits.len(),
                targets.len()
            ),
        ));
    }
    let n = logits.len() / c;
    let mut grad = vec![0.0f32; logits.len()];
    let mut loss = 0.0f64;
    for r in 0..n {
        let z = &logits[r * c..(r + 1) * c];
        let t = &targets[r * c..(r + 1) * c];
        let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = z.iter().map(|&v| ((v - m) as f64).exp()).sum();
        let log_sum = sum.ln();
        for k in 0..c {
            let log_p = (z[k] - m) as f64 - log_sum;
            loss -= t[k] as f64 * log_p;
            grad[r * c + k] = ((log_p.exp() - t[k] as f64) / n as f64) as f32;
        }
    }
    Ok(((loss / n as f64) as f32, grad))
}

/// Adam's hyper-parameters (Kingma and Ba), with decoupled weight decay (AdamW) when
/// `weight_decay > 0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Step size.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator guard.
    pub eps: f32,
    /// Decoupled weight decay, applied to weights of rank ≥ 2 only (not to biases).
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// A model being trained: its parameters are updated on the host by Adam after each step and
/// uploaded again (small models; the host copy is the optimiser's master copy).
pub struct Trainer<B: Backend> {
    model: Model<B>,
    config: AdamConfig,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: i32,
}

impl<B: Backend> Trainer<B> {
    /// Starts training `model` from its current parameters.
    pub fn new(model: Model<B>, config: AdamConfig) -> Self {
        let sizes: Vec<usize> = model
            .graph()
            .params()
            .iter()
            .map(|p| p.value.data.len())
            .collect();
        Trainer {
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            model,
            config,
            t: 0,
        }
    }

    /// The model as trained so far.
    pub fn model(&self) -> &Model<B> {
        &self.model
    }

    /// Ends training.
    pub fn into_model(self) -> Model<B> {
        self.model
    }

    /// One optimisation step on a batch `x` with target distributions `targets` (`n×classes`)
    /// at step size `lr`; returns the batch's mean loss before the step.
    pub fn step(&mut self, x: &HostTensor, targets: &[f32], lr: f32) -> Result<f32> {
        let model = &self.model;
        let g = model.graph();
        let spec = BackwardSpec {
            from: g.output(),
            stop: Stop::Input,
            rule: RectifierRule::default(),
            weight_grads: true,
        };
        let xd = model.upload_input(x)?;
        let acts = model.forward(&xd, &model.backward_needs(&spec)?)?;
        let logits = acts.get(g.output())?;
        let [n, c] = logits.shape().matrix("training logits")?;
        let (loss, dz) = softmax_cross_entropy(&model.backend().download(logits)?, targets, c)?;
        if !loss.is_finite() {
            return Err(Error::NonFinite {
                what: "the training loss".into(),
                index: 0,
                value: loss.to_string(),
            });
        }
        let seed = model.backend().upload(&dz, Shape::new([n, c]))?;
        let grads = model.backward(&acts, &spec, seed)?;
        drop(acts);
        let host: Vec<Option<Vec<f32>>> = grads
            .params
            .iter()
            .map(|p| p.as_ref().map(|t| model.backend().download(t)).transpose())
            .collect::<Result<_>>()?;
        self.t += 1;
        let AdamConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
            ..
        } = self.config;
        let bc1 = 1.0 - beta1.powi(self.t);
        let bc2 = 1.0 - beta2.powi(self.t);
        for (i, grad) in host.into_iter().enumerate() {
            let Some(grad) = grad else { continue };
            let mut p = self.model.graph().params()[i].value.clone();
            let decay = if p.shape.rank() >= 2 {
                weight_decay
            } else {
                0.0
            };
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            for (j, w) in p.data.iter_mut().enumerate() {
                let gj = grad[j];
                m[j] = beta1 * m[j] + (1.0 - beta1) * gj;
                v[j] = beta2 * v[j] + (1.0 - beta2) * gj * gj;
                let step = (m[j] / bc1) / ((v[j] / bc2).sqrt() + eps);
                *w -= lr * (step + decay * *w);
            }
            self.model.set_param(crate::ParamId(i), p)?;
        }
        Ok(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::softmax_cross_entropy;

    #[test]
    fn cross_entropy_and_gradient() {
        // Uniform logits over 4 classes: loss ln 4, gradient (1/4 − t)/n.
        let (loss, g) =
            softmax_cross_entropy(&[0.0; 8], &[1., 0., 0., 0., 0., 0.5, 0.5, 0.], 4).unwrap();
        assert!((loss - 4f32.ln()).abs() < 1e-6);
        let want = [-0.375, 0.125, 0.125, 0.125, 0.125, -0.125, -0.125, 0.125];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-7, "{g:?}");
        }
        assert!(softmax_cross_entropy(&[0.0; 3], &[1.0; 3], 2).is_err());
    }
}
