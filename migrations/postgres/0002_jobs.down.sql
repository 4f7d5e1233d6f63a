DROP TABLE flags;
DROP TABLE schedule_ticks;
DROP TABLE job_breakers;
DROP TABLE job_leases;
DROP TABLE jobs;
