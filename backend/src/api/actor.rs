//! Who reads or writes patient data through the API, and the audit record of it.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::audit::{self, Action, Event, Interaction, Kind, Outcome, Reference};
use crate::auth::{AuthError, Authenticated, ClientAddr, Principal};
use crate::error::ApiError;
use crate::state::AppState;

/// The signed-in user or system client behind a request (found by the access
/// policy), and where it came from.
#[derive(Clone, Debug)]
pub(crate) struct Actor {
    pub(crate) principal: Principal,
    address: Option<IpAddr>,
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        let ClientAddr(address) = ClientAddr::from_request_parts(parts, state)
            .await
            .unwrap_or(ClientAddr(None));
        Ok(Self { principal, address })
    }
}

impl Actor {
    /// Records that this actor did `interaction` on `touched`. Patient data goes
    /// out only once its reading is on the record: if the record cannot be
    /// written, the request fails (503) instead.
    pub(crate) async fn record(
        &self,
        app: &AppState,
        interaction: Interaction,
        touched: Vec<Reference>,
    ) -> Result<(), ApiError> {
        let action = match interaction {
            Interaction::Read | Interaction::Search => Action::R,
            Interaction::Create => Action::C,
            Interaction::Update => Action::U,
            Interaction::Delete => Action::D,
        };
        let event = Event::new(Kind::Rest(interaction), action, Outcome::Success)
            .by(Some(self.principal.agent()))
            .from(self.address)
            .on_all(touched);
        audit::record_alone(&app.db, app.clock.now(), &event).await?;
        Ok(())
    }
}
