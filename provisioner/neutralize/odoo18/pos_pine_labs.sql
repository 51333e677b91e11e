UPDATE pos_payment_method
   SET pine_labs_test_mode = true,
       pine_labs_merchant = 'dummymerchant',
       pine_labs_security_token = 'dummy123456';
