//! Users and revoked tokens.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::StoreResult;
use crate::schema::{revoked_tokens, users};

#[diesel::declare_sql_function]
extern "SQL" {
    /// PostgreSQL's `lower(text)`.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// A user as stored, *with* the password hash: only the login check reads this type.
/// Nothing that is serialized to a client is built from it.
#[derive(Queryable, Selectable, Debug, Clone)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserCredentials {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub role: String,
}

/// A user without any secret.
#[derive(Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// Adds a user; `Ok(None)` when the email (case-insensitively) is taken.
pub async fn add(
    conn: &mut AsyncPgConnection,
    email: &str,
    password_hash: &str,
    role: &str,
) -> StoreResult<Option<User>> {
    let result = diesel::insert_into(users::table)
        .values((
            users::email.eq(email),
            users::password_hash.eq(password_hash),
            users::role.eq(role),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await;
    match result {
        Ok(user) => Ok(Some(user)),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The credentials of the user with this email (case-insensitive).
pub async fn credentials(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> StoreResult<Option<UserCredentials>> {
    Ok(users::table
        .filter(lower(users::email).eq(email.to_lowercase()))
        .select(UserCredentials::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Every user, by email.
pub async fn list(conn: &mut AsyncPgConnection) -> StoreResult<Vec<User>> {
    Ok(users::table
        .order(users::email)
        .select(User::as_select())
        .load(conn)
        .await?)
}

/// How many users exist.
pub async fn count(conn: &mut AsyncPgConnection) -> StoreResult<i64> {
    Ok(users::table.count().get_result(conn).await?)
}

/// Revokes a token id until `expires_at` (revoking twice keeps the first reason).
pub async fn revoke_token(
    conn: &mut AsyncPgConnection,
    jti: &str,
    expires_at: DateTime<Utc>,
    reason: &str,
) -> StoreResult<()> {
    diesel::insert_into(revoked_tokens::table)
        .values((
            revoked_tokens::jti.eq(jti),
            revoked_tokens::expires_at.eq(expires_at),
            revoked_tokens::reason.eq(reason),
        ))
        .on_conflict(revoked_tokens::jti)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// Token ids revoked whose tokens may still be accepted: not expired, or expired less than
/// `leeway` ago (verifiers accept a token until `exp` + their leeway, so a revocation must
/// outlive it as long). Older revocations are deleted on the way.
pub async fn revoked_token_ids(
    conn: &mut AsyncPgConnection,
    leeway: chrono::Duration,
) -> StoreResult<Vec<String>> {
    let horizon = Utc::now() - leeway;
    diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.lt(horizon)))
        .execute(conn)
        .await?;
    Ok(revoked_tokens::table
        .filter(revoked_tokens::expires_at.ge(horizon))
        .select(revoked_tokens::jti)
        .load(conn)
        .await?)
}
