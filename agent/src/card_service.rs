//! The card as a shared resource of the agent: one card operation at a time (a second request waits a
//! bounded time, then gets BUSY), run on blocking threads, with the certificate cache kept across logins.
//! Of several cards, the CPx ones count (a bi-fente reader also holds the patient's Carte Vitale).

use std::sync::Arc;
use std::time::Duration;

use cpx_card::{CertCache, CpxCard};

use crate::api::ApiError;
use crate::messages::Code;
use crate::scan;

pub struct CardService {
    pub cache: CertCache,
    /// Longest wait for one card call.
    pub card_timeout: Duration,
    /// Longest wait for the card while another request uses it (a PIN dialog may be open).
    pub busy_wait: Duration,
    permit: tokio::sync::Semaphore,
}

impl CardService {
    pub fn new(cache: CertCache, card_timeout: Duration, busy_wait: Duration) -> Arc<Self> {
        Arc::new(Self { cache, card_timeout, busy_wait, permit: tokio::sync::Semaphore::new(1) })
    }

    /// Runs `f` with exclusive use of the card service, on a blocking thread.
    pub async fn exclusive<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&CardService) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = tokio::time::timeout(self.busy_wait, self.permit.acquire())
            .await
            .map_err(|_| ApiError::new(Code::Busy))?
            .map_err(|_| ApiError::new(Code::AgentError))?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| ApiError::new(Code::AgentError).detail(e.to_string()))?
    }

    /// The CPx cards present, opened (other cards are skipped).
    pub fn cpx_cards(&self) -> Result<Vec<Box<dyn CpxCard>>, ApiError> {
        let ctx =
            cpx_pcsc::Context::establish().map_err(|e| ApiError::from(&cpx_card::CardError::Pcsc(e)))?;
        let mut readers =
            cpx_pcsc::list_readers(&ctx).map_err(|e| ApiError::from(&cpx_card::CardError::Pcsc(e)))?;
        if readers.is_empty() {
            return Err(ApiError::new(Code::NoReader));
        }
        readers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut cards = Vec::new();
        let mut last_problem = None;
        // A card another program holds exclusively is tried too: it answers "in use" (CARD_IN_USE), which
        // says more than "no CPx card".
        for r in readers
            .iter()
            .filter(|r| matches!(r.state, cpx_pcsc::SlotState::Present | cpx_pcsc::SlotState::Exclusive))
        {
            match scan::open_card_with_atr(&r.name, Some(&r.atr), self.card_timeout, &self.cache) {
                Ok(card) => cards.push(card),
                Err(e) => last_problem = Some(e),
            }
        }
        if cards.is_empty() {
            return Err(match last_problem {
                Some(e) if Code::from(&e) != Code::CardNotCpx => ApiError::from(&e),
                _ => ApiError::new(Code::NoCpxCard),
            });
        }
        Ok(cards)
    }
}
