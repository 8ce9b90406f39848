-- bench/sql/members.sql — :n members, generated with generate_series.
-- Each has an e-mail address, a Japanese name, status trial, one tag, and
-- an expiry spread over 100 days from :'t0' (so "expires in exactly N days"
-- matches 1% of them).  Loaded with triggers off: the rows are valid by
-- construction (what the member triggers would check and normalise).
SET session_replication_role = replica;
INSERT INTO taskflow.member (member_id, external_id, email, name, status, joined_at,
                             expires_at, tags, properties, created_at)
SELECT i, 'm' || i, 'member' || i || '@example.jp', '会員' || i, 'trial',
       :'t0'::timestamptz - interval '90 days' + (i % 90) * interval '1 day',
       :'t0'::timestamptz + interval '1 day' + (i % 100) * interval '1 day',
       ARRAY['既存'], '{}', :'t0'::timestamptz - interval '100 days'
  FROM generate_series(1, :n) i;
SELECT pg_catalog.setval('taskflow.member_member_id_seq', :n);
RESET session_replication_role;
