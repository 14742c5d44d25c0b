-- Operators who log in to the query API, and revoked tokens.

CREATE TABLE users (
    id            bigserial   PRIMARY KEY,
    email         text        NOT NULL,
    -- argon2id, PHC string format. Never leaves the server: no API type has a field for it.
    password_hash text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email ON users (lower(email));

-- Tokens revoked before they expire, by their jti. Services poll this table every few
-- seconds; rows past expires_at no longer matter and are cleaned up.
CREATE TABLE revoked_tokens (
    jti        text        PRIMARY KEY,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    reason     text        NOT NULL DEFAULT ''
);

CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);
