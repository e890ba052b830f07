//! Integration tests: the library and the real binary against the emulator.

mod api_wire;
mod emulator_checks;
mod upload_run;
mod util;
