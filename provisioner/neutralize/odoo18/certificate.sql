UPDATE certificate_certificate
   SET pkcs12_password = 'dummy';
   
UPDATE certificate_key
   SET password = 'dummy';
