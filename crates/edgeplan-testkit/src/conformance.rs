//! The backend conformance suite (to be written).
