SELECT event, username, user_id, coalesce(request_id, '-') FROM claim_events ORDER BY id;
