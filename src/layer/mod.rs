//! Layers: compression and reproducible tar building.
