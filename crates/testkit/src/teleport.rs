//! teleport (in progress)
