DROP TABLE app_event_users;
DROP TABLE app_events;
