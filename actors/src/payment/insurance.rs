//! The insurance part of a fee order's checkout (PAY-3), done by the order's payment actor: fee
//! upload (6201) and pre-settlement (6202) showing the split; once the cash part is paid (Alipay
//! or WeChat Pay, the ordinary trade paths) the settlement is confirmed at the centre; a
//! checkout that cannot settle is reversed in full (the cash given back, the insurance order
//! revoked, 6401); a refund gives back the insurance part (6203) before the cash part.
//!
//! Crash safety: every step is written before the call that depends on it and again after its
//! answer, and every call is idempotent at the centre (6201 by `medOrgOrd` and content, the
//! confirmation by the cash trade, 6203 by `appRefdSn`, 6401 of a revoked order), so a restarted
//! actor repeats the step it was in. An order waiting on the centre is due a look every few
//! seconds (`next_check`): the open-order sweeper brings it back after a restart.

use chrono::Utc;
use hospital_domain::insured::InsuranceBinding;
use hospital_domain::ledger::Channel;
use hospital_domain::message::MessageKind;
use hospital_domain::order::{
    InsurancePart, InsuranceSplit, InsuranceStage, Order, OrderError, OrderKind, OrderStatus, RefundStatus,
};
use hospital_domain::Fen;
use hospital_integrations::insurance::{
    code, CashChannel, ConfirmRequest, FeeItem, FeeUpload, InsuranceError, InsuredIdentity, InsuredType, OrderRef,
    OrderStatus as CentreStatus, PreSettleRequest, RefundRequest, RefundStatus as CentreRefund, Settlement,
    SplitAmounts,
};
use hospital_integrations::{alipay, wechatpay};
use hospital_store::model::Sealed;
use hospital_store::FieldCipher;

use super::msg::{PaymentError, PaymentMsg};
use super::state::{Change, PaymentState, SETTLE_RETRY};
use crate::deps::InsuranceAccess;

/// 医疗类别 of an outpatient fee order: 普通门诊.
const MED_TYPE_OUTPATIENT: &str = "11";

impl PaymentState {
    fn insurance(&self) -> Result<InsuranceAccess, PaymentError> {
        self.ctx.insurance.clone().ok_or(PaymentError::NotConfigured)
    }

    fn open(cipher: &FieldCipher, sealed: &str) -> Result<String, PaymentError> {
        cipher.open(&Sealed(sealed.to_string())).map_err(PaymentError::from)
    }

    /// The identity a recorded insurance part names (its sealed fields opened).
    fn part_identity(&self, access: &InsuranceAccess, part: &InsurancePart) -> Result<InsuredIdentity, PaymentError> {
        Ok(InsuredIdentity {
            pay_auth_no: Self::open(&access.cipher, &part.pay_auth_no)?,
            psn_no: part.psn_no.clone(),
            name: part.name.clone(),
            id_type: part.id_type.clone(),
            id_no: Self::open(&access.cipher, &part.id_no)?,
            insured_type: if part.insured_type == "resident" { InsuredType::Resident } else { InsuredType::Employee },
            region: part.region.clone(),
            expires_at: Utc::now(),
        })
    }

    fn order_ref(&self, access: &InsuranceAccess, part: &InsurancePart) -> Result<OrderRef, PaymentError> {
        let identity = self.part_identity(access, part)?;
        Ok(OrderRef::new(&part.pay_ord_id, &part.pay_token, &identity))
    }

    /// 6201 + 6202 under the 就诊人's bound identity: the split, recorded on the order (still
    /// unpaid). Asking again before paying answers the recorded split.
    pub(super) async fn pre_settle(
        &mut self,
        binding: InsuranceBinding,
        use_account: bool,
    ) -> Result<Order, PaymentError> {
        let access = self.insurance()?;
        let o = &self.order;
        if let Some(part) = &o.insurance {
            let zero_cash = part.split.cash == Fen::ZERO && o.status == OrderStatus::Paying;
            if part.stage == InsuranceStage::PreSettled
                && o.trades.is_empty()
                && (o.status == OrderStatus::Created || zero_cash)
            {
                return Ok(o.clone());
            }
            if zero_cash || part.stage == InsuranceStage::Settled && part.split.cash == Fen::ZERO {
                return Ok(o.clone());
            }
            return Err(OrderError::InvalidState(o.status).into());
        }
        if o.kind != OrderKind::Fees || o.status != OrderStatus::Created || !o.trades.is_empty() {
            return Err(OrderError::InvalidState(o.status).into());
        }
        if o.patient_id != Some(binding.patient_id) || o.account_id != binding.account_id {
            return Err(PaymentError::NotInsured("the insurance binding is not this order's patient's".into()));
        }
        let now = Utc::now();
        if now >= o.expires_at {
            return Err(PaymentError::Expired);
        }
        if !binding.is_live(now) {
            return Err(PaymentError::NotInsured("the insurance authorisation has expired: authorise again".into()));
        }
        let identity = InsuredIdentity {
            pay_auth_no: Self::open(&access.cipher, &binding.pay_auth_no)?,
            psn_no: binding.psn_no.clone(),
            name: binding.name.clone(),
            id_type: binding.id_type.clone(),
            id_no: Self::open(&access.cipher, &binding.id_no)?,
            insured_type: if binding.insured_type == "resident" {
                InsuredType::Resident
            } else {
                InsuredType::Employee
            },
            region: binding.region.clone(),
            expires_at: binding.expires_at,
        };
        let mut items = Vec::with_capacity(o.items.len());
        for (n, i) in o.items.iter().enumerate() {
            let Some(code) = i.insurance_code.clone().filter(|c| !c.is_empty()) else {
                return Err(PaymentError::NotInsured(format!("{} has no insurance catalogue code", i.name)));
            };
            // The platform checks amount = count × price: a quantity that does not divide the
            // amount is billed as one unit.
            let (count, price) = match i.quantity {
                q if q > 0 && i.amount.get() % u64::from(q) == 0 => (q, Fen::new(i.amount.get() / u64::from(q))),
                _ => (1, i.amount),
            };
            items.push(FeeItem {
                feedetl_sn: format!("{}{:02}", &o.out_trade_no()[..20], n + 1),
                med_list_codg: code,
                medins_list_codg: i.fee_item_id.as_ref().map(|f| f.to_string()).unwrap_or_else(|| i.name.clone()),
                count,
                unit_price: price,
                amount: i.amount,
            });
        }
        let out_trade_no = o.out_trade_no();
        let dept = o.items.iter().find_map(|i| i.department_id).map(|d| d.to_string()).unwrap_or_else(|| "0000".into());
        // Everything in the upload comes from the order, so a retry after a crash is the same
        // upload and the centre answers the same payOrdId.
        let upload = FeeUpload {
            identity: identity.clone(),
            med_org_ord: out_trade_no.clone(),
            med_type: MED_TYPE_OUTPATIENT.into(),
            dept_code: dept.chars().take(30).collect(),
            dept_name: "门诊".into(),
            caty: "A01".into(),
            begin: o.created_at,
            charge_batch: out_trade_no[..30].to_string(),
            use_account,
            items,
        };
        let uploaded = access.client.upload_fees(upload).await?;
        let pre = access
            .client
            .pre_settle(PreSettleRequest {
                pay_auth_no: identity.pay_auth_no.clone(),
                pay_ord_id: uploaded.pay_ord_id.clone(),
                pay_token: uploaded.pay_token.clone(),
                mdtrt_id: uploaded.mdtrt_id.clone(),
                org_biz_ser: out_trade_no.clone(),
                charge_batch: out_trade_no[..30].to_string(),
                use_account,
            })
            .await?;
        let amounts = pre.amounts.ok_or_else(|| {
            PaymentError::Insurance(InsuranceError::UnexpectedResponse {
                status: 200,
                detail: "pre-settlement without amounts".into(),
            })
        })?;
        let detail = pre.detail;
        let part = InsurancePart {
            psn_no: binding.psn_no.clone(),
            pay_auth_no: binding.pay_auth_no.clone(),
            name: binding.name.clone(),
            id_type: binding.id_type.clone(),
            id_no: binding.id_no.clone(),
            insured_type: binding.insured_type.clone(),
            region: binding.region.clone(),
            med_org_ord: out_trade_no,
            pay_ord_id: uploaded.pay_ord_id,
            pay_token: uploaded.pay_token,
            mdtrt_id: uploaded.mdtrt_id,
            split: InsuranceSplit {
                total: amounts.total,
                fund: amounts.fund,
                account: amounts.account,
                cash: amounts.cash,
            },
            uncovered: detail.map(|d| d.uncovered).unwrap_or_default(),
            in_scope: detail.map(|d| d.in_scope).unwrap_or_default(),
            deductible: detail.map(|d| d.deductible).unwrap_or_default(),
            stage: InsuranceStage::PreSettled,
            setl_id: None,
            settled_at: None,
        };
        let mut o = self.order.clone();
        o.pre_settled(part)?;
        // Nothing to pay in cash (ownPayAmt 0): no cash channel is asked; the settlement is
        // confirmed at once and completes the order.
        let zero_cash = o.cash_due() == Fen::ZERO;
        if zero_cash {
            o.start_paying()?;
        }
        self.save(o, Change::default()).await?;
        metrics::counter!("payment_insurance_total", "step" => "pre_settled").increment(1);
        if zero_cash {
            self.confirm_settlement().await;
        }
        Ok(self.order.clone())
    }

    /// The cash part is in (or there is none): settles at the centre. A refusal that means the
    /// checkout can no longer settle (the person's year changed, the order is gone there)
    /// reverses it; no answer leaves it for the next look.
    pub(super) async fn confirm_settlement(&mut self) {
        if !self.order.awaiting_settlement() {
            return;
        }
        let Ok(access) = self.insurance() else { return };
        let Some(part) = self.order.insurance.clone() else { return };
        let trade = self.order.paid_trade().cloned();
        let channel = match trade.as_ref().map(|t| t.channel) {
            Some(Channel::Alipay) => CashChannel::Alipay,
            Some(Channel::WechatPay) => CashChannel::WechatPay,
            _ => CashChannel::None,
        };
        let req = ConfirmRequest {
            pay_ord_id: part.pay_ord_id.clone(),
            pay_token: part.pay_token.clone(),
            channel,
            cash_trade_no: trade.as_ref().and_then(|t| t.trade_no.clone()),
            cash_amount: part.split.cash,
        };
        let settled = match access.client.confirm(req).await {
            Ok(s) => Ok(s),
            // Refused: what does the centre hold? (A confirmation that landed before a crash
            // is answered as settled; a refusal with the order not settled is final.)
            Err(e) if !e.is_retryable() => match self.order_ref(&access, &part) {
                Ok(r) => match access.client.query(r).await {
                    Ok(s) if s.status.is_settled() => Ok(s),
                    Ok(_) => Err(Some(e)),
                    Err(q) if q.is_retryable() => Err(None),
                    Err(_) => Err(Some(e)),
                },
                Err(_) => Err(None),
            },
            Err(e) => {
                tracing::warn!(order = %self.order.id, error = %e, "insurance confirmation: no answer; will retry");
                Err(None)
            }
        };
        match settled {
            Ok(s) => {
                if let Err(e) = self.settled(&s).await {
                    tracing::warn!(order = %self.order.id, error = %e, "recording the settlement failed; will retry");
                }
            }
            Err(Some(refusal)) => {
                tracing::warn!(order = %self.order.id, error = %refusal, "the centre refused the settlement: reversing");
                let reason = match refusal.api_code() {
                    Some(code::SPLIT_CHANGED) => "医保待遇已变化，本次结算已撤销",
                    _ => "医保结算失败，本次结算已撤销",
                };
                self.reverse(reason).await;
            }
            Err(None) => {
                self.myself.send_after(SETTLE_RETRY, || PaymentMsg::CheckProvider);
            }
        }
    }

    /// The centre settled: the order is paid, every part, with its ledger movement.
    async fn settled(&mut self, s: &Settlement) -> Result<(), PaymentError> {
        let now = Utc::now();
        let mut o = self.order.clone();
        if !o.settle(s.setl_id.clone(), s.settled_at.unwrap_or(now))? {
            return Ok(());
        }
        let split = o.insurance.as_ref().map(|i| i.split);
        let mut change = Change { items: true, ..Default::default() };
        let body = match split {
            Some(sp) => format!(
                "{} {} 已支付：医保统筹 {}，个人账户 {}，自付 {}。",
                o.description, o.amount, sp.fund, sp.account, sp.cash
            ),
            None => format!("{} {} 已支付。", o.description, o.amount),
        };
        change.messages.push(self.message(MessageKind::PaymentSuccess, "支付成功", body));
        change.movements.extend(o.payment_movement(now, self.today()));
        self.save(o, change).await?;
        metrics::counter!("payment_insurance_total", "step" => "settled").increment(1);
        Ok(())
    }

    /// Starts (durably) and carries out the reversal of a checkout that cannot settle.
    pub(super) async fn reverse(&mut self, reason: &str) {
        if self.order.reversal.is_none() {
            let mut o = self.order.clone();
            o.start_reversal(reason, Utc::now());
            if let Err(e) = self.save(o, Change::default()).await {
                tracing::warn!(order = %self.order.id, error = %e, "could not record the reversal; will retry");
                self.myself.send_after(SETTLE_RETRY, || PaymentMsg::CheckProvider);
                return;
            }
        }
        if let Err(e) = self.continue_reversal().await {
            tracing::warn!(order = %self.order.id, error = %e, "reversal step failed; will retry");
            self.myself.send_after(SETTLE_RETRY, || PaymentMsg::CheckProvider);
        }
    }

    /// The reversal's remaining steps: revoke at the centre (6401), give the cash back through
    /// its channel (the same refund number every time), then close the order.
    pub(super) async fn continue_reversal(&mut self) -> Result<(), PaymentError> {
        let Some(r) = self.order.reversal.clone() else { return Ok(()) };
        if !r.insurance_revoked {
            self.revoke_at_centre().await?;
            let mut o = self.order.clone();
            if let Some(rev) = o.reversal.as_mut() {
                rev.insurance_revoked = true;
            }
            if let Some(i) = o.insurance.as_mut() {
                i.stage = InsuranceStage::Revoked;
            }
            self.save(o, Change::default()).await?;
        }
        if let (Some(refund_no), false) = (r.cash_refund_no.clone(), r.cash_returned) {
            let trade = self.order.paid_trade().cloned().ok_or(PaymentError::Mismatch("no paid trade".into()))?;
            self.return_cash(trade.channel, &refund_no, trade.amount).await?;
            let now = Utc::now();
            let mut o = self.order.clone();
            if let Some(rev) = o.reversal.as_mut() {
                rev.cash_returned = true;
            }
            let mut change = Change::default();
            change.movements.extend(o.cash_returned_movement(now, self.today()));
            self.save(o, change).await?;
        }
        let mut o = self.order.clone();
        if o.finish_reversal_if_done() {
            let msg = self.message(
                MessageKind::Refund,
                "订单已撤销",
                format!("{}：{}，已付款项原路退回。", o.description, r.reason),
            );
            self.save(o, Change { messages: vec![msg], items: true, ..Default::default() }).await?;
            metrics::counter!("payment_insurance_total", "step" => "reversed").increment(1);
        }
        Ok(())
    }

    /// 6401: cancels the order at the centre; one already revoked (a retry) is done.
    pub(super) async fn revoke_at_centre(&self) -> Result<(), PaymentError> {
        let access = self.insurance()?;
        let Some(part) = self.order.insurance.clone() else { return Ok(()) };
        if part.stage != InsuranceStage::PreSettled {
            return Ok(());
        }
        match access.client.revoke(self.order_ref(&access, &part)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.api_code() == Some(code::ORDER_STATE) => {
                // Only a revoked order may be refused and still count as revoked.
                let s = access.client.query(self.order_ref(&access, &part)?).await?;
                if s.status == CentreStatus::Revoked {
                    Ok(())
                } else {
                    Err(e.into())
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Gives cash back through its channel (idempotent by `refund_no` at the provider).
    async fn return_cash(&self, channel: Channel, refund_no: &str, amount: Fen) -> Result<(), PaymentError> {
        match channel {
            Channel::Alipay => {
                self.alipay()?
                    .refund(alipay::RefundRequest {
                        out_trade_no: self.order.out_trade_no(),
                        out_request_no: refund_no.to_string(),
                        amount,
                        reason: Some("医保结算撤销".into()),
                    })
                    .await?;
            }
            Channel::WechatPay => {
                self.provider()?
                    .refund(wechatpay::RefundRequest {
                        out_trade_no: self.order.out_trade_no(),
                        out_refund_no: refund_no.to_string(),
                        reason: Some("医保结算撤销".into()),
                        refund: amount,
                        total: amount,
                    })
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// A pending refund's insurance part (6203, every part back), asked before its cash part.
    /// Returns whether the cash part may go ahead.
    pub(super) async fn refund_insurance_part(&mut self, refund_no: &str) -> Result<bool, PaymentError> {
        let Some(r) = self.order.refunds.iter().find(|r| r.refund_no == refund_no).cloned() else { return Ok(false) };
        let Some(ins) = r.insurance.clone().filter(|i| !i.done) else { return Ok(true) };
        if r.status != RefundStatus::Pending {
            return Ok(false);
        }
        let access = self.insurance()?;
        let part = self.order.insurance.clone().ok_or(PaymentError::Mismatch("no insurance part".into()))?;
        let res = access
            .client
            .refund(RefundRequest {
                pay_ord_id: part.pay_ord_id.clone(),
                pay_auth_no: Self::open(&access.cipher, &part.pay_auth_no)?,
                app_refd_sn: ins.app_refd_sn.clone(),
                at: r.requested_at,
                amounts: SplitAmounts {
                    total: part.split.total,
                    fund: part.split.fund,
                    account: part.split.account,
                    cash: part.split.cash,
                },
            })
            .await?;
        match res.status {
            CentreRefund::Success => {
                let mut o = self.order.clone();
                o.refund_part_done(refund_no, false, Utc::now());
                self.save(o, Change::default()).await?;
                metrics::counter!("payment_insurance_total", "step" => "refunded").increment(1);
                Ok(true)
            }
            CentreRefund::Failed => {
                let mut o = self.order.clone();
                o.finish_refund(refund_no, false, Utc::now());
                self.save(o, Change::default()).await?;
                Ok(false)
            }
            CentreRefund::Abnormal => Err(PaymentError::Insurance(InsuranceError::Api {
                code: code::SYSTEM_ERROR,
                message: "refund outcome unknown".into(),
            })),
        }
    }
}
