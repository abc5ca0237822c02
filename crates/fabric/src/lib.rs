//! weft-fabric (being written).
