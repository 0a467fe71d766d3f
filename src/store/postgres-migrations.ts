// Schema history of the PostgreSQL store. Append only: entry N upgrades version N to N+1; the
// applied versions are recorded in stepgate_schema_migrations. Same shape as the SQLite schema
// (sqlite-migrations.ts), with `username` for SQLite's `user` (a reserved word here), BIGINT epoch
// milliseconds for times, BYTEA for blobs and real booleans. Plain SQL only: no extension, no
// superuser, nothing outside the database's `public` schema, so a role that merely owns its
// database can run it. Session keys, invite and recovery codes are stored only as HMACs, spent
// challenge tickets only as hashes; TOTP secrets only encrypted (SPEC §9.2, §9.6).
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE factors (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('totp', 'passkey')),
    name TEXT NOT NULL,
    secret_enc BYTEA,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    credential_id TEXT,
    public_key BYTEA,
    counter BIGINT,
    transports TEXT[],
    backed_up BOOLEAN,
    device_type TEXT
  );
  CREATE INDEX factors_username ON factors (username);
  CREATE UNIQUE INDEX factors_credential_id ON factors (credential_id) WHERE credential_id IS NOT NULL;

  CREATE TABLE pending_totp (
    username TEXT PRIMARY KEY,
    secret_enc BYTEA NOT NULL,
    created_at BIGINT NOT NULL
  );

  CREATE TABLE totp_steps (
    username TEXT PRIMARY KEY,
    last_step BIGINT NOT NULL
  );

  CREATE TABLE recovery_codes (
    username TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (username, code_hash)
  );

  CREATE TABLE failures (
    username TEXT NOT NULL,
    at BIGINT NOT NULL
  );
  CREATE INDEX failures_username_at ON failures (username, at);

  CREATE TABLE lockouts (
    username TEXT PRIMARY KEY,
    locked_until BIGINT,
    consecutive INTEGER NOT NULL DEFAULT 0
  );

  CREATE TABLE grants (
    session_key TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    factor TEXT NOT NULL,
    verified_at BIGINT NOT NULL,
    once_consumed BOOLEAN NOT NULL DEFAULT false
  );
  CREATE INDEX grants_username ON grants (username);

  CREATE TABLE tickets (
    id_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    session_key TEXT NOT NULL,
    rule TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
  );
  CREATE INDEX tickets_expires_at ON tickets (expires_at);

  CREATE TABLE invites (
    code_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
  );

  CREATE TABLE invite_only_users (
    username TEXT PRIMARY KEY
  );

  CREATE TABLE webauthn_challenges (
    challenge TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    session_key TEXT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('register', 'authenticate')),
    expires_at BIGINT NOT NULL
  );

  CREATE TABLE webauthn_user_handles (
    username TEXT PRIMARY KEY,
    handle TEXT NOT NULL UNIQUE
  );

  CREATE TABLE stashes (
    id_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    session_key TEXT NOT NULL,
    payload_enc BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
  );

  CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    username TEXT,
    event TEXT NOT NULL,
    factor TEXT,
    outcome TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    detail TEXT
  );
  CREATE INDEX audit_username_at ON audit (username, at);
  CREATE INDEX audit_at ON audit (at);
  `,
  // 2: challenge tickets are sealed tokens (stepup/ticket.ts) that a challenge no longer writes;
  // only the hashes of spent ones are kept, until they expire. Tickets issued before stop working
  // (their user retries the action).
  `
  CREATE TABLE spent_tickets (
    id_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
  );
  CREATE INDEX spent_tickets_expires_at ON spent_tickets (expires_at);
  DROP TABLE tickets;
  `,
];
