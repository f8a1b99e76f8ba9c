-- Posts are drafts until approved (business rules, revision 2): by the operator
-- (`cep post-approve`) or by `layers.optimization.auto_approve`. Only an approved post is
-- published on a linked profile. Posts planned before this were never read by anyone:
-- they stay drafts.
ALTER TABLE posts ADD COLUMN approved_at BIGINT;
ALTER TABLE posts ADD COLUMN approved_by TEXT;
