"""The May 2026 BS thread, run on the model (CI runs these doctests).

The guest is a complete, valid 64-bit guest (``vmxkb.guests.LONG_MODE``, every VMCS field
given); each step changes only the fields the thread is about:

>>> from vmxkb.guests import long_mode
>>> from vmxkb.vmentry import evaluate

A vCPU restored inside a MOV-SS shadow with TF=1: the pending single-step (BS) did not
travel, no #DB is injected, so the entry fails the BS check.

>>> r = evaluate(long_mode(GUEST_RFLAGS=0x102, GUEST_INTERRUPTIBILITY_INFO=2, GUEST_PENDING_DBG_EXCEPTIONS=0))
>>> print(r.outcome)
VM-entry failure, exit reason 0x80000021, qualification 0
>>> [v.rule_id for v in r.violations]
['ENTRY_GUEST_PDE_BS_REQUIRED_TF']

On the source host the CPU had saved BS itself; with it the entry succeeds, the MOV-SS
shadow stays, and the single-step is held until after the next instruction:

>>> ok = evaluate(long_mode(GUEST_RFLAGS=0x102, GUEST_INTERRUPTIBILITY_INFO=2, GUEST_PENDING_DBG_EXCEPTIONS=0x4000))
>>> print(ok.outcome)
VM entry succeeds
>>> ok.after.movss_blocking, hex(ok.after.pending_dbg_held), ok.after.pending_dbg_delivered
(True, '0x4000', 0)

The v3 patch's case: a #DB injected in that shadow with BS stuffed; the entry succeeds,
the shadow is dropped and nothing stays pending (the stuffed BS is invisible):

>>> inj = evaluate(long_mode(VM_ENTRY_INTR_INFO_FIELD=0x80000301, GUEST_RFLAGS=0x102,
...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_PENDING_DBG_EXCEPTIONS=0x4000))
>>> print(inj.outcome)
VM entry succeeds
>>> inj.after.movss_blocking, inj.after.pending_dbg_held, inj.after.pending_dbg_delivered
(False, 0, 0)
"""
