//! The explanation methods and their command-line names.

use gradcam_core::{Error, Result};

/// An explanation method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// Grad-CAM: ReLU(Σₖ αₖAₖ), αₖ the spatial mean of ∂y_c/∂Aₖ.
    GradCam,
    /// Grad-CAM++ (pytorch-grad-cam's closed form).
    GradCamPlusPlus,
    /// XGradCAM.
    XGradCam,
    /// HiResCAM: Σₖ (∂y_c/∂Aₖ ⊙ Aₖ).
    HiResCam,
    /// LayerCAM: Σₖ (ReLU(∂y_c/∂Aₖ) ⊙ Aₖ).
    LayerCam,
    /// EigenCAM: projection of the activations on their first principal component.
    EigenCam,
    /// ScoreCAM: channel weights from the class scores of masked inputs.
    ScoreCam,
    /// Guided backpropagation to the input.
    GuidedBackprop,
    /// Guided backpropagation × the upsampled Grad-CAM map.
    GuidedGradCam,
    /// Deconvnet backward to the input.
    Deconvnet,
    /// Deconvnet × the upsampled Grad-CAM map.
    DeconvnetGradCam,
    /// The plain input gradient.
    Saliency,
    /// Occlusion: the class score's drop when a window is blanked.
    Occlusion,
    /// CAM: the classifier's weights on globally pooled target activations.
    Cam,
}

impl Method {
    /// Every method, in the order outputs are listed.
    pub const ALL: [Method; 14] = [
        Method::GradCam,
        Method::GradCamPlusPlus,
        Method::XGradCam,
        Method::HiResCam,
        Method::LayerCam,
        Method::EigenCam,
        Method::ScoreCam,
        Method::GuidedBackprop,
        Method::GuidedGradCam,
        Method::Deconvnet,
        Method::DeconvnetGradCam,
        Method::Saliency,
        Method::Occlusion,
        Method::Cam,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Method::GradCam => "gradcam",
            Method::GradCamPlusPlus => "gradcam++",
            Method::XGradCam => "xgradcam",
            Method::HiResCam => "hirescam",
            Method::LayerCam => "layercam",
            Method::EigenCam => "eigencam",
            Method::ScoreCam => "scorecam",
            Method::GuidedBackprop => "guided-backprop",
            Method::GuidedGradCam => "guided-gradcam",
            Method::Deconvnet => "deconvnet",
            Method::DeconvnetGradCam => "deconvnet-gradcam",
            Method::Saliency => "saliency",
            Method::Occlusion => "occlusion",
            Method::Cam => "cam",
        }
    }

    /// The name of the method's main output tensor (the fixtures' naming).
    pub fn tensor(self) -> &'static str {
        match self {
            Method::GradCam => "gradcam",
            Method::GradCamPlusPlus => "gradcampp",
            Method::XGradCam => "xgradcam",
            Method::HiResCam => "hirescam",
            Method::LayerCam => "layercam",
            Method::EigenCam => "eigencam",
            Method::ScoreCam => "scorecam",
            Method::GuidedBackprop => "guided_backprop",
            Method::GuidedGradCam => "guided_gradcam",
            Method::Deconvnet => "deconvnet",
            Method::DeconvnetGradCam => "deconvnet_gradcam",
            Method::Saliency => "saliency",
            Method::Occlusion => "occlusion",
            Method::Cam => "cam",
        }
    }

    /// Parses a command-line name (`gradcam++` also as `gradcampp`).
    pub fn parse(s: &str) -> Result<Method> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        let s = if s == "gradcampp" {
            "gradcam++".to_string()
        } else {
            s
        };
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown method `{s}`; known: {}",
                    Method::ALL.map(|m| m.name()).join(", ")
                ))
            })
    }

    /// Parses a comma-separated list.
    pub fn parse_list(s: &str) -> Result<Vec<Method>> {
        let mut v = s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Method::parse)
            .collect::<Result<Vec<_>>>()?;
        v.sort();
        v.dedup();
        if v.is_empty() {
            return Err(Error::InvalidArgument("no method given".into()));
        }
        Ok(v)
    }

    /// Whether the method needs the gradient at the target layer.
    pub fn needs_target_gradient(self) -> bool {
        matches!(
            self,
            Method::GradCam
                | Method::GradCamPlusPlus
                | Method::XGradCam
                | Method::HiResCam
                | Method::LayerCam
                | Method::GuidedGradCam
                | Method::DeconvnetGradCam
        )
    }

    /// Whether the method reads the target layer at all.
    pub fn uses_target_layer(self) -> bool {
        self.needs_target_gradient()
            || matches!(self, Method::EigenCam | Method::ScoreCam | Method::Cam)
    }
}
