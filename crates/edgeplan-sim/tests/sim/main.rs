//! The simulated world: its files, what backends observe in it, and how it behaves.

mod behaviour;
mod common;
mod file_format;
mod worlds;
