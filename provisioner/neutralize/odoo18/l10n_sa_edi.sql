-- disable l10n_sa_edi
UPDATE res_company
SET l10n_sa_api_mode = 'sandbox';