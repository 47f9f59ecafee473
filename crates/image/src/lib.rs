//! Pictures in and out for gradcam: decoding and preprocessing images into model inputs
//! ([`preprocess`]), colormaps ([`colormap`]), heatmap overlays and gradient pictures
//! ([`picture`]), the paper's Figure-1 panel with a title and captions ([`panel`]), and bar
//! charts of measured figures ([`chart`]). Pure host code on `image::RgbImage`; no model or
//! backend.

pub mod chart;
pub mod colormap;
mod font;
pub mod panel;
pub mod picture;
pub mod preprocess;

pub use chart::BarChart;
pub use colormap::Colormap;
pub use image::RgbImage;
pub use panel::Panel;
pub use preprocess::Preprocess;
