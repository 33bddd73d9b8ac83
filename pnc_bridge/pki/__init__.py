"""PKI for ISO 15118 Plug & Charge and OCPP security profiles 2-3.

Public API (see ``docs/pki.md`` for the call order and ``pki/README.md`` for admins):

- :func:`generate_test_pki` -> :class:`TestPki`: the full ISO 15118-2/-20 test hierarchy.
- :class:`TrustStore`: roots by kind (``v2g``, ``mo``, ``oem``, ``csms``) and the charger's
  SECC / charging-station chains and keys; atomic changes, cheap reads.
- :func:`validate_chain` -> :class:`Verdict`: valid, or one ISO 15118 response code
  (:class:`VerdictCode`) with a human reason.
- :func:`certificate_hash_data`: OCPP ``CertificateHashDataType`` fields.
- :func:`parse_emaid`: EMAID per ISO 15118-2 Annex H.
- :func:`create_csr`, :func:`install_signed`: OCPP SignCertificate / CertificateSigned.
- :func:`encrypt_contract_private_key`, :func:`decrypt_contract_private_key`: ISO 15118-2
  contract key transport.
- :func:`check_ocsp_response`, :func:`build_ocsp_response`: OCSP.
"""

from pnc_bridge.pki._certio import PkiInputError, load_certificate_file, load_certificates
from pnc_bridge.pki._contract_key import (
    ContractKeyError,
    EncryptedContractKey,
    decrypt_contract_private_key,
    encrypt_contract_private_key,
)
from pnc_bridge.pki._csr import (
    CertificateSignedStatus,
    CertificateSigningUse,
    CsrError,
    InstallResult,
    create_csr,
    install_signed,
)
from pnc_bridge.pki._emaid import Emaid, EmaidError, emaid_check_digit, parse_emaid
from pnc_bridge.pki._hashdata import CertificateHashData, certificate_hash_data, chain_hash_data
from pnc_bridge.pki._ocsp import OcspError, OcspResult, OcspStatus, build_ocsp_response, check_ocsp_response
from pnc_bridge.pki._profiles import Purpose, RootKind, Variant
from pnc_bridge.pki._store import LeafSlot, StoreError, TrustStore, fingerprint
from pnc_bridge.pki._testpki import TestPki, generate_test_pki
from pnc_bridge.pki._validate import Anchors, Failure, Verdict, VerdictCode, issuing_root, validate_chain

__all__ = [
    "Anchors",
    "issuing_root",
    "CertificateHashData",
    "CertificateSignedStatus",
    "CertificateSigningUse",
    "ContractKeyError",
    "CsrError",
    "Emaid",
    "EmaidError",
    "EncryptedContractKey",
    "Failure",
    "InstallResult",
    "LeafSlot",
    "OcspError",
    "OcspResult",
    "OcspStatus",
    "PkiInputError",
    "Purpose",
    "RootKind",
    "StoreError",
    "TestPki",
    "TrustStore",
    "Variant",
    "Verdict",
    "VerdictCode",
    "build_ocsp_response",
    "certificate_hash_data",
    "chain_hash_data",
    "check_ocsp_response",
    "create_csr",
    "decrypt_contract_private_key",
    "emaid_check_digit",
    "encrypt_contract_private_key",
    "fingerprint",
    "generate_test_pki",
    "install_signed",
    "load_certificate_file",
    "load_certificates",
    "parse_emaid",
    "validate_chain",
]
