//! The signed-in viewer of a request that carries a JWT (license, admin and stream
//! routes): the verified claims, with the ids now naming the user.

use playback::jwt::Claims;

use super::{Ids, Refused};
use crate::gate::Gate;
use crate::http::facts::RequestFacts;

/// Verifies the request's JWT at the request's time; the ids come back naming the user, on the
/// claims or on the refusal.
pub async fn authenticate(
    gate: &Gate,
    facts: &RequestFacts<'_>,
    mut ids: Ids,
) -> Result<(Claims, Ids), Refused> {
    let claims = gate
        .viewers
        .viewer(facts.jwt, facts.now.unix)
        .await
        .map_err(|e| ids.refused(e))?;
    ids.user_id = Some(claims.sub.clone());
    Ok((claims, ids))
}
