-- The inbox lists replies until someone answers them, and onboarding tasks past due.
ALTER TABLE prospects ADD COLUMN answered_at BIGINT;
ALTER TABLE prospects ADD COLUMN answered_by TEXT;
CREATE INDEX tasks_open_idx ON tasks (done_at, due_at);
-- The fleet page counts the jobs each queue finished in the last minutes.
CREATE INDEX job_outcomes_finished_idx ON job_outcomes (finished_at);
