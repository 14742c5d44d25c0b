DROP TABLE service_status;
