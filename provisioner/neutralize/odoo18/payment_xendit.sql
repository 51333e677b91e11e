UPDATE payment_provider
   SET xendit_secret_key = 'dummysecret',
       xendit_webhook_token = 'dummytoken';
