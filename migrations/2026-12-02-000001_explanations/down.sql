DROP INDEX logs_errors_service_ts;
DROP TABLE incident_explanations;
