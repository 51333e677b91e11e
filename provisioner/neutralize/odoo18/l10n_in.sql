UPDATE res_company
   SET l10n_in_edi_production_env = false;

