UPDATE pos_payment_method
SET paytm_test_mode = true,
    paytm_merchant_key = 'dummykey00012345';
