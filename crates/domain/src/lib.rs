//! eduledger-domain: the 2023 plan (青教〔2023〕61号) as types, commands, events and rules.
//!
//! Pure: no I/O, no clock. `decide(state, command, seq)` returns the event to record and the
//! state after it, or the rule the command breaks; `State::apply` folds an event in.

pub mod batch;
pub mod command;
pub mod decide;
pub mod error;
pub mod event;
pub mod points;
pub mod roster;
pub mod rules;
pub mod state;
pub mod suggest;
pub mod values;

pub use batch::{BatchError, batch_lines};
pub use command::{Command, Meta, Submission, Target, parse_submission};
pub use decide::{Decision, decide, resolve, resolve_replacement};
pub use error::DomainError;
pub use event::{EntityRef, Event};
pub use rules::check;
pub use state::{Origin, State};
