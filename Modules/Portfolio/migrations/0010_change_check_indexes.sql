-- A ledger change is checked on what it can refuse (`SetBasedBook.accepts`): the entries
-- of its instrument, and its currency's cash only when a withdrawal in that currency
-- follows it. These find both without reading the rest of a large ledger.
CREATE INDEX portfolio_transactions_symbol ON portfolio_transactions (tenant_id, portfolio_id, symbol, trade_date, entry_seq);
CREATE INDEX portfolio_transactions_withdrawals ON portfolio_transactions (tenant_id, portfolio_id, currency, trade_date)
    WHERE kind = 'withdrawal';
