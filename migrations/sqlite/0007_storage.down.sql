DROP TABLE storage_objects;
