DROP TABLE revoked_tokens;
DROP TABLE users;
