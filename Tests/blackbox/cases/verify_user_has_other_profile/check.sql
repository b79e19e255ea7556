SELECT username, coalesce(claimed_by, '-') FROM profiles ORDER BY username;
SELECT count(*) FROM claim_events;
