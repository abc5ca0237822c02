//! weft-lb (being written).
