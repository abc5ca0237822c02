//! weft-store (being written).
