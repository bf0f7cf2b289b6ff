//! The simulated world: its files, what the engine observes in it, and how it behaves.

mod behaviour;
mod common;
mod file_format;
mod worlds;
