// Schema history of the SQLite store. Append only: each entry upgrades from the previous
// version (PRAGMA user_version). Session keys, invite and recovery codes are stored only as HMACs,
// spent challenge tickets only as hashes; TOTP secrets only encrypted (SPEC §9.2, §9.6).
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE factors (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('totp', 'passkey')),
    name TEXT NOT NULL,
    secret_enc BLOB,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
  );
  CREATE INDEX factors_user ON factors (user);

  CREATE TABLE pending_totp (
    user TEXT PRIMARY KEY,
    secret_enc BLOB NOT NULL,
    created_at INTEGER NOT NULL
  );

  CREATE TABLE totp_steps (
    user TEXT PRIMARY KEY,
    last_step INTEGER NOT NULL
  );

  CREATE TABLE recovery_codes (
    user TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user, code_hash)
  );

  CREATE TABLE failures (
    user TEXT NOT NULL,
    at INTEGER NOT NULL
  );
  CREATE INDEX failures_user_at ON failures (user, at);

  CREATE TABLE lockouts (
    user TEXT PRIMARY KEY,
    locked_until INTEGER,
    consecutive INTEGER NOT NULL DEFAULT 0
  );

  CREATE TABLE grants (
    session_key TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    factor TEXT NOT NULL,
    verified_at INTEGER NOT NULL,
    once_consumed INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX grants_user ON grants (user);

  CREATE TABLE tickets (
    id_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    session_key TEXT NOT NULL,
    rule TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
  );

  CREATE TABLE invites (
    code_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
  );

  CREATE TABLE invite_only_users (
    user TEXT PRIMARY KEY
  );

  CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    user TEXT,
    event TEXT NOT NULL,
    factor TEXT,
    outcome TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    detail TEXT
  );
  CREATE INDEX audit_user_at ON audit (user, at);
  CREATE INDEX audit_at ON audit (at);
  `,
  // 2: passkeys (WebAuthn credentials as factors), their open challenges, and the per-user random
  // user handle (user.id) that authenticators see instead of the app's user id.
  `
  ALTER TABLE factors ADD COLUMN credential_id TEXT;
  ALTER TABLE factors ADD COLUMN public_key BLOB;
  ALTER TABLE factors ADD COLUMN counter INTEGER;
  ALTER TABLE factors ADD COLUMN transports TEXT;
  ALTER TABLE factors ADD COLUMN backed_up INTEGER;
  ALTER TABLE factors ADD COLUMN device_type TEXT;
  CREATE UNIQUE INDEX factors_credential_id ON factors (credential_id) WHERE credential_id IS NOT NULL;

  CREATE TABLE webauthn_challenges (
    challenge TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    session_key TEXT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('register', 'authenticate')),
    expires_at INTEGER NOT NULL
  );

  CREATE TABLE webauthn_user_handles (
    user TEXT PRIMARY KEY,
    handle TEXT NOT NULL UNIQUE
  );
  `,
  // 3: stashed form posts, replayed once after the user verifies (SPEC §5). The payload
  // (method, target, headers, body) is one AES-GCM blob.
  `
  CREATE TABLE stashes (
    id_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    session_key TEXT NOT NULL,
    payload_enc BLOB NOT NULL,
    expires_at INTEGER NOT NULL
  );
  `,
  // 4: challenge tickets are sealed tokens (stepup/ticket.ts) that a challenge no longer writes;
  // only the hashes of spent ones are kept, until they expire. Tickets issued before stop working
  // (their user retries the action).
  `
  CREATE TABLE spent_tickets (
    id_hash TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX spent_tickets_expires_at ON spent_tickets (expires_at);
  DROP TABLE tickets;
  `,
];
