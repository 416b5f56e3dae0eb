-- 0008: sign-in attempts, counted in the database so that every server process shares the limits
-- (labelwright.services.signin). A row is a password check that failed, or one still running: the
-- account's rows are deleted when its password is right, and rows older than the window as new ones come.
-- account: the user name tried (it need not exist); user_id: that user, when there is one.
CREATE TABLE signin_failures (
    id {pk},
    account TEXT NOT NULL,
    user_id {bigint},
    address TEXT NOT NULL,
    created_at {float} NOT NULL
);
CREATE INDEX signin_failures_account ON signin_failures (account, created_at);
CREATE INDEX signin_failures_address ON signin_failures (address, created_at);
CREATE INDEX signin_failures_time ON signin_failures (created_at);
