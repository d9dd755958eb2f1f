"""Named bit positions and encodings used by the rules.

Every constant is a fact from the SDM (Vol. 3) or the kernel's ``asm/vmx.h``; rule bodies
use these names and never raw masks.
"""

from __future__ import annotations


def bit(n: int) -> int:
    """The mask of bit ``n``."""
    return 1 << n


def bits(hi: int, lo: int) -> int:
    """The mask of bits ``hi:lo`` inclusive (SDM notation)."""
    return ((1 << (hi - lo + 1)) - 1) << lo


# --- RFLAGS (Vol. 1 / Vol. 3A) ---------------------------------------------------------
RFLAGS_FIXED1 = bit(1)  #: bit 1 reads as 1
RFLAGS_TF = bit(8)  #: trap flag (single-step)
RFLAGS_IF = bit(9)  #: interrupt-enable flag
RFLAGS_RF = bit(16)  #: resume flag
RFLAGS_VM = bit(17)  #: virtual-8086 mode

# --- Guest interruptibility state (VMCS "Guest Non-Register State") -------------------
GUEST_INTR_STATE_STI = bit(0)  #: blocking by STI
GUEST_INTR_STATE_MOV_SS = bit(1)  #: blocking by MOV SS / POP SS
GUEST_INTR_STATE_SMI = bit(2)  #: blocking by SMI
GUEST_INTR_STATE_NMI = bit(3)  #: blocking by NMI (virtual-NMI blocking with "virtual NMIs")
GUEST_INTR_STATE_ENCLAVE_INTR = bit(4)  #: enclave interruption (SGX editions onward)
GUEST_INTR_STATE_SHADOW = GUEST_INTR_STATE_STI | GUEST_INTR_STATE_MOV_SS
GUEST_INTR_STATE_DEFINED = (
    GUEST_INTR_STATE_STI
    | GUEST_INTR_STATE_MOV_SS
    | GUEST_INTR_STATE_SMI
    | GUEST_INTR_STATE_NMI
    | GUEST_INTR_STATE_ENCLAVE_INTR
)
GUEST_INTR_STATE_RESERVED = bits(31, 0) & ~GUEST_INTR_STATE_DEFINED

# --- Guest activity state ------------------------------------------------------------
GUEST_ACTIVITY_ACTIVE = 0
GUEST_ACTIVITY_HLT = 1
GUEST_ACTIVITY_SHUTDOWN = 2
GUEST_ACTIVITY_WAIT_SIPI = 3
ACTIVITY_NAMES = {0: "active", 1: "HLT", 2: "shutdown", 3: "wait-for-SIPI"}

# --- Pending debug exceptions (same layout as DR6 where defined) ------------------------
PENDING_DBG_B0_B3 = bits(3, 0)  #: breakpoint conditions matched
PENDING_DBG_ENABLED_BP = bit(12)  #: an enabled data or I/O breakpoint matched
PENDING_DBG_BS = bit(14)  #: single-step trap pending
PENDING_DBG_RTM = bit(16)  #: #DB or #BP inside an RTM region
PENDING_DBG_DEFINED = PENDING_DBG_B0_B3 | PENDING_DBG_ENABLED_BP | PENDING_DBG_BS | PENDING_DBG_RTM
PENDING_DBG_RESERVED = bits(63, 0) & ~PENDING_DBG_DEFINED
PENDING_DBG_VALID_CAUSES = PENDING_DBG_BS | PENDING_DBG_ENABLED_BP  #: what makes them "valid"

DR6_BS = bit(14)  #: DR6 single-step bit

# --- IA32_DEBUGCTL and DR7 ---------------------------------------------------------------
DEBUGCTLMSR_BTF = bit(1)  #: single-step on branches
DEBUGCTLMSR_RTM = bit(15)  #: advanced debugging of RTM regions
DR7_RTM = bit(11)  #: RTM debugging enable

# --- VM-entry interruption-information field ----------------------------------------------
INTR_INFO_VECTOR_MASK = bits(7, 0)
INTR_INFO_TYPE_SHIFT = 8
INTR_INFO_TYPE_MASK = bits(10, 8)
INTR_INFO_DELIVER_CODE_MASK = bit(11)
INTR_INFO_RESERVED = bits(30, 12)
INTR_INFO_VALID_MASK = bit(31)

INTR_TYPE_EXT_INTR = 0
INTR_TYPE_RESERVED = 1
INTR_TYPE_NMI_INTR = 2
INTR_TYPE_HARD_EXCEPTION = 3
INTR_TYPE_SOFT_INTR = 4
INTR_TYPE_PRIV_SW_EXCEPTION = 5  #: INT1 / ICEBP
INTR_TYPE_SOFT_EXCEPTION = 6  #: INT3, INTO
INTR_TYPE_OTHER_EVENT = 7  #: vector 0: pending MTF VM exit
INTR_TYPE_NAMES = {
    0: "external interrupt",
    1: "reserved",
    2: "NMI",
    3: "hardware exception",
    4: "software interrupt",
    5: "privileged software exception",
    6: "software exception",
    7: "other event",
}
#: Types whose delivery is "vectoring" (everything but type 7).
VECTORING_TYPES = frozenset({0, 2, 3, 4, 5, 6})
#: Types that carry an instruction length.
INSTRUCTION_LENGTH_TYPES = frozenset({4, 5, 6})

DB_VECTOR = 1
NMI_VECTOR = 2
BP_VECTOR = 3
OF_VECTOR = 4
MC_VECTOR = 18
MTF_PENDING_VECTOR = 0
#: Exceptions that push an error code in protected mode.
ERROR_CODE_VECTORS = frozenset({8, 10, 11, 12, 13, 14, 17})
MAX_EXCEPTION_VECTOR = 31
ERROR_CODE_WIDTH_MASK = bits(31, 16)  #: must be clear when an error code is delivered
MAX_INSTRUCTION_LENGTH = 15

# --- Segment access rights (VMCS format, Vol. 3C "Guest Register State") ---------------
AR_TYPE_MASK = bits(3, 0)  #: segment type
AR_TYPE_ACCESSED = bit(0)  #: type bit 0: accessed
AR_TYPE_WRITABLE = bit(1)  #: data: writable; code: readable
AR_TYPE_CODE = bit(3)  #: type bit 3: code segment
AR_S = bit(4)  #: descriptor type: 1 code/data, 0 system
AR_DPL_SHIFT = 5
AR_DPL_MASK = bits(6, 5)
AR_P = bit(7)  #: present
AR_RESERVED_11_8 = bits(11, 8)
AR_AVL = bit(12)
AR_L = bit(13)  #: 64-bit code segment
AR_DB = bit(14)  #: default operation size
AR_G = bit(15)  #: granularity
AR_UNUSABLE = bit(16)  #: "segment unusable" (VMX only)
AR_RESERVED_31_17 = bits(31, 17)
SELECTOR_RPL_MASK = bits(1, 0)
SELECTOR_TI = bit(2)  #: table indicator: 1 = LDT
SEG_TYPE_TSS_BUSY_16 = 3
SEG_TYPE_TSS_BUSY_32 = 11  #: also the 64-bit busy TSS
SEG_TYPE_LDT = 2

# --- CR0, CR3, CR4, DR7, EFER (Vol. 3A) ---------------------------------------------------
X86_CR0_PE = bit(0)
X86_CR0_NE = bit(5)
X86_CR0_NW = bit(29)
X86_CR0_CD = bit(30)
X86_CR0_PG = bit(31)
X86_CR4_PAE = bit(5)
X86_CR4_PCIDE = bit(17)
X86_CR4_CET = bit(23)
X86_CR4_LA57 = bit(12)
X86_CR4_FRED = bit(32)
X86_CR0_WP = bit(16)
DR7_RESERVED_HIGH = bits(63, 32)  #: DR7 bits 63:32 must be 0 on VM entry
EFER_SCE = bit(0)
EFER_LME = bit(8)
EFER_LMA = bit(10)
EFER_NX = bit(11)

# --- VM-execution, VM-exit and VM-entry controls (kernel asm/vmx.h names) ---------------
PIN_BASED_NMI_EXITING = bit(3)
PIN_BASED_VIRTUAL_NMIS = bit(5)
CPU_BASED_USE_TSC_OFFSETTING = bit(3)
CPU_BASED_ACTIVATE_SECONDARY_CONTROLS = bit(31)
CPU_BASED_ACTIVATE_TERTIARY_CONTROLS = bit(17)
CPU_BASED_MONITOR_TRAP_FLAG = bit(27)
SECONDARY_EXEC_ENABLE_EPT = bit(1)
SECONDARY_EXEC_SHADOW_VMCS = bit(14)
SECONDARY_EXEC_UNRESTRICTED_GUEST = bit(7)
VM_EXIT_HOST_ADDR_SPACE_SIZE = bit(9)
VM_ENTRY_LOAD_DEBUG_CONTROLS = bit(2)
VM_ENTRY_IA32E_MODE = bit(9)  #: "IA-32e mode guest"
VM_ENTRY_SMM = bit(10)  #: "entry to SMM"
VM_ENTRY_DEACT_DUAL_MONITOR = bit(11)
VM_ENTRY_LOAD_IA32_PERF_GLOBAL_CTRL = bit(13)
VM_ENTRY_LOAD_IA32_PAT = bit(14)
VM_ENTRY_LOAD_IA32_EFER = bit(15)
VM_ENTRY_LOAD_BNDCFGS = bit(16)
VM_ENTRY_LOAD_IA32_RTIT_CTL = bit(18)
VM_ENTRY_LOAD_CET_STATE = bit(20)
VM_ENTRY_LOAD_IA32_LBR_CTL = bit(21)
VM_ENTRY_LOAD_IA32_PKRS = bit(22)
VMCS_LINK_POINTER_NONE = bits(63, 0)  #: all ones: no shadow VMCS / no link

# --- VM-exit reasons and VM-instruction errors (kernel asm/vmx.h) ------------------------
VMX_EXIT_REASONS_FAILED_VMENTRY = bit(31)
EXIT_REASON_INVALID_STATE = 33
EXIT_REASON_MSR_LOAD_FAIL = 34
VMXERR_ENTRY_INVALID_CONTROL_FIELD = 7
VMXERR_ENTRY_INVALID_HOST_STATE_FIELD = 8
ENTRY_FAIL_DEFAULT = 0
ENTRY_FAIL_NMI_WITH_STI = 3  #: exit qualification for the NMI-with-STI-blocking failure


def intr_info_type(info: int) -> int:
    """The interruption type, bits 10:8."""
    return (info & INTR_INFO_TYPE_MASK) >> INTR_INFO_TYPE_SHIFT


def intr_info_vector(info: int) -> int:
    """The vector, bits 7:0."""
    return info & INTR_INFO_VECTOR_MASK


def intr_info_valid(info: int) -> bool:
    """Whether the valid bit (31) is set."""
    return bool(info & INTR_INFO_VALID_MASK)


def make_intr_info(vector: int, intr_type: int, *, deliver_code: bool = False) -> int:
    """Build a valid VM-entry interruption-information value."""
    value = INTR_INFO_VALID_MASK | (intr_type << INTR_INFO_TYPE_SHIFT) | vector
    if deliver_code:
        value |= INTR_INFO_DELIVER_CODE_MASK
    return value


def ss_dpl(ar_bytes: int) -> int:
    """DPL from a segment's access-rights field (bits 6:5)."""
    return (ar_bytes & AR_DPL_MASK) >> AR_DPL_SHIFT
