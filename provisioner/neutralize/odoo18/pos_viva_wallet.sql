UPDATE pos_payment_method
   SET viva_wallet_test_mode = true;
