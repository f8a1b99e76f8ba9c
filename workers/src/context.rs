use cep_shared::queue::Queue;
use cep_shared::store::Store;
use cep_shared::{Clock, Secrets, Settings};
use std::sync::Arc;

/// Everything a handler may touch.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub settings: Arc<Settings>,
    pub secrets: Arc<Secrets>,
    pub store: Store,
    pub queue: Queue,
    pub clock: Clock,
}

impl Ctx {
    pub fn now(&self) -> i64 {
        self.clock.now_millis()
    }
}
