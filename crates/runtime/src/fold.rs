//! Folding inference batch norm into the convolution before it.

use crate::graph::{Graph, Node, NodeId, Op, Param, ParamId};
use gradcam_core::{HostTensor, Result};

impl Graph {
    /// A copy in which every batch norm that is the only consumer of a convolution is folded
    /// into it (`w' = w·scale`, `b' = b·scale + shift`). The folded node takes the batch norm's
    /// name, so the convolution's own pre-norm output disappears: list in `protect` the nodes
    /// whose outputs must survive (a target layer), and their batch norms stay separate.
    pub fn fold_batch_norm(&self, protect: &[NodeId]) -> Result<Graph> {
        let consumers = self.consumers();
        let n = self.nodes.len();
        // fold_into[bn] = conv for every foldable pair
        let mut folded_conv = vec![false; n];
        let mut bn_of_conv = vec![None; n];
        for (j, node) in self.nodes.iter().enumerate() {
            if let Op::BatchNorm { .. } = node.op {
                let i = node.inputs[0];
                if matches!(self.nodes[i.0].op, Op::Conv2d { .. })
                    && consumers[i.0].len() == 1
                    && !protect.contains(&i)
                {
                    folded_conv[i.0] = true;
                    bn_of_conv[i.0] = Some(j);
                }
            }
        }
        let mut params: Vec<Param> = Vec::new();
        let mut take = |p: &Param| {
            params.push(p.clone());
            ParamId(params.len() - 1)
        };
        let mut remap: Vec<NodeId> = Vec::with_capacity(n);
        let mut nodes: Vec<Node> = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let inputs: Vec<NodeId> = node.inputs.iter().map(|x| remap[x.0]).collect();
            if let (Op::BatchNorm { .. }, Some(&prev)) = (&node.op, node.inputs.first()) {
                if folded_conv[prev.0] {
                    remap.push(remap[prev.0]);
                    continue;
                }
            }
            let op = match (&node.op, bn_of_conv[i]) {
                (
                    Op::Conv2d {
                        weight,
                        bias,
                        params: cp,
                    },
                    Some(j),
                ) => {
                    let Op::BatchNorm { scale, shift } = &self.nodes[j].op else {
                        unreachable!()
                    };
                    let (scale, shift) = (&self.params[scale.0].value, &self.params[shift.0].value);
                    let w = &self.params[weight.0].value;
                    let per = w.shape.numel() / scale.data.len();
                    let wd: Vec<f32> = w
                        .data
                        .iter()
                        .enumerate()
                        .map(|(e, v)| v * scale.data[e / per])
                        .collect();
                    let bd: Vec<f32> = (0..scale.data.len())
                        .map(|k| {
                            bias.map_or(0.0, |b| self.params[b.0].value.data[k]) * scale.data[k]
                                + shift.data[k]
                        })
                        .collect();
                    let name = &self.nodes[j].name;
                    let weight = take(&Param {
                        name: format!("{name}.folded_weight"),
                        value: HostTensor::new(w.shape.clone(), wd)?,
                    });
                    let bias = take(&Param {
                        name: format!("{name}.folded_bias"),
                        value: HostTensor::new([bd.len()], bd)?,
                    });
                    nodes.push(Node {
                        name: name.clone(),
                        op: Op::Conv2d {
                            weight,
                            bias: Some(bias),
                            params: *cp,
                        },
                        inputs,
                    });
                    remap.push(NodeId(nodes.len() - 1));
                    continue;
                }
                (
                    Op::Conv2d {
                        weight,
                        bias,
                        params: cp,
                    },
                    None,
                ) => Op::Conv2d {
                    weight: take(&self.params[weight.0]),
                    bias: bias.map(|b| take(&self.params[b.0])),
                    params: *cp,
                },
                (Op::Linear { weight, bias }, _) => Op::Linear {
                    weight: take(&self.params[weight.0]),
                    bias: bias.map(|b| take(&self.params[b.0])),
                },
                (Op::BatchNorm { scale, shift }, _) => Op::BatchNorm {
                    scale: take(&self.params[scale.0]),
                    shift: take(&self.params[shift.0]),
                },
                (op, _) => op.clone(),
            };
            nodes.push(Node {
                name: node.name.clone(),
                op,
                inputs,
            });
            remap.push(NodeId(nodes.len() - 1));
        }
        Ok(Graph {
            nodes,
            params,
            aliases: self
                .aliases
                .iter()
                .map(|(a, id)| (a.clone(), remap[id.0]))
                .collect(),
            output: remap[self.output.0],
            input_channels: self.input_channels,
            default_target: self.default_target.map(|t| remap[t.0]),
            input_size: self.input_size,
        })
    }
}
