DELETE FROM ir_config_parameter WHERE key = 'cloud_storage_provider';
