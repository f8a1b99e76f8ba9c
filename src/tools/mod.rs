//! Tools that examine the fleet rather than run it: the design check, the benchmark and
//! the simulation. They use the roles' library functions ([`crate::app`]) and the
//! workers; nothing in the fleet uses them.

pub mod architecture;
pub mod bench;
pub mod simulate;
