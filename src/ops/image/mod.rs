//! Images: [`build`] (an image from directories and tars, on a base or from scratch, with the
//! configuration it gets in [`config`]) and [`index`] (a multi-platform index from existing
//! manifests).

pub mod build;
pub mod config;
pub mod index;
