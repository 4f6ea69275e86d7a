#!/usr/bin/env bash
# Regenerates the test IGC-Santé PKI that the virtual cards carry.
#
#   TEST AC RACINE IGC-SANTE FORT            (self-signed root)
#   └─ TEST AC IGC-SANTE FORT PERSONNES      (issuing CA)
#      └─ one authentication and one signature certificate per test holder
#
# The output (*.pem) is committed: the simulator embeds it, so nothing is generated at build or test time.
# Subjects follow the IGC-Santé form (docs/simulator.md): SN=<nom>+CN=<identifiant national>+GN=<prénom>, title=<profession>, C=FR.
# RSA-2048 everywhere, as on real CPS3/CPS4 cards. Test material only: never trust these anchors in production.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

ou="/OU=IGC-SANTE TEST/OU=0002 187512751/O=ASIP-SANTE/C=FR"
cat > "$work/ca.cnf" <<CNF
[ca]
default_ca = igc
[igc]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
crlnumber = $work/crlnumber
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = optional
[root_ext]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ca_ext]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[auth_ext]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
certificatePolicies = 1.2.250.1.71.4.2.1
[sign_ext]
basicConstraints = critical,CA:false
keyUsage = critical,nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
certificatePolicies = 1.2.250.1.71.4.2.1
CNF
touch "$work/index.txt"; echo 1000 > "$work/serial"

key() { [ -f "$1.key.pem" ] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key.pem" 2>/dev/null; }
# sign NAME SUBJECT ISSUER EXT START END (a certificate already there is kept: REISSUE=1 issues every one again)
sign() {
  if [ -f "$1.pem" ] && [ -z "${REISSUE:-}" ]; then return 0; fi
  openssl req -new -utf8 -multivalue-rdn -key "$1.key.pem" -subj "$2" -out "$work/$1.csr"
  if [ "$3" = self ]; then
    openssl ca -batch -utf8 -multivalue-rdn -config "$work/ca.cnf" -selfsign -keyfile "$1.key.pem" \
      -extensions "$4" -startdate "$5" -enddate "$6" -notext -preserveDN -in "$work/$1.csr" -out "$1.pem" 2>/dev/null
  else
    openssl ca -batch -utf8 -multivalue-rdn -config "$work/ca.cnf" -cert "$3.pem" -keyfile "$3.key.pem" \
      -extensions "$4" -startdate "$5" -enddate "$6" -notext -preserveDN -in "$work/$1.csr" -out "$1.pem" 2>/dev/null
  fi
}

key root; sign root "/CN=TEST AC RACINE IGC-SANTE FORT$ou" self root_ext 20200101000000Z 20451231235959Z
key ca;   sign ca "/CN=TEST AC IGC-SANTE FORT PERSONNES$ou" root ca_ext 20200101000000Z 20401231235959Z

# holder NAME NOM PRENOM IDNAT PROFESSION START END
holder() {
  local subj="/SN=$2+CN=$4+GN=$3/title=$5/C=FR"
  key "$1-auth"; sign "$1-auth" "$subj" ca auth_ext "$6" "$7"
  key "$1-sign"; sign "$1-sign" "$subj" ca sign_ext "$6" "$7"
}
holder dupont   DUPONT  JEAN   899700123456 "Médecin"                  20250101000000Z 20351231235959Z
holder martin   MARTIN  CLAIRE 899700234567 "Pharmacien"               20250101000000Z 20351231235959Z
holder leroy    LEROY   PAUL   899700345678 "Médecin"                  20200101000000Z 20230101000000Z
holder roux     ROUX    ANNE   0751012345   "Masseur-Kinésithérapeute" 20250101000000Z 20351231235959Z
# DUPONT's certificates renewed (new keys, same holder): a card whose certificate changed under the same
# serial (`cpx-sim insert cps3 --holder dupont-renewed`).
holder dupont2  DUPONT  JEAN   899700123456 "Médecin"                  20260101000000Z 20361231235959Z
# The contactless technical certificate ("Certificat Technique CPS") of DUPONT's card.
key dupont-tech; sign dupont-tech "/SN=DUPONT+CN=899700123456+GN=JEAN/title=Médecin/C=FR" ca auth_ext 20250101000000Z 20351231235959Z
# The other CPx cards (docs/card-facts.md#card-types), serials from 3000 so that they never meet the ones
# above. Subjects as far as public facts go: a nominative structure card keeps SN/GN and gets O (inferred);
# a non-nominative CPE has no SN and no GN, O = the structure's raison sociale, CN = the identifiant national
# « xxxx/yyyy » (GIE SESAM-Vitale, PDT-INF-617). What `title` holds for non-health staff is not public: none.
[ "$(cat "$work/serial")" -ge 3000 ] 2>/dev/null || echo 3000 > "$work/serial"
# structure_holder NAME SUBJECT
structure_holder() {
  key "$1-auth"; sign "$1-auth" "$2" ca auth_ext 20250101000000Z 20351231235959Z
  key "$1-sign"; sign "$1-sign" "$2" ca sign_ext 20250101000000Z 20351231235959Z
}
structure_holder moreau  "/SN=MOREAU+CN=30B0238838\/CPET00001+GN=SOPHIE/O=CENTRE HOSPITALIER DE TEST/C=FR"
structure_holder accueil "/CN=3990000011\/ACCUEIL01/O=CLINIQUE DE TEST DU PARC/C=FR"
structure_holder bernard "/SN=BERNARD+CN=699700123456\/SEC01+GN=MARIE/C=FR"
holder petit    PETIT   LUCAS  899700456789 "Médecin"                  20250101000000Z 20351231235959Z
# A CRL of the issuing CA that revokes DUPONT's authentication certificate (for relying-party tests).
[ -f crl-dupont-revoked.pem ] && [ -z "${REISSUE:-}" ] && { echo "PKI written to $(pwd)"; exit 0; }
echo 01 > "$work/crlnumber"
openssl ca -config "$work/ca.cnf" -cert ca.pem -keyfile ca.key.pem -revoke dupont-auth.pem 2>"$work/revoke.log" || { cat "$work/revoke.log" >&2; exit 1; }
openssl ca -config "$work/ca.cnf" -cert ca.pem -keyfile ca.key.pem -gencrl -crldays 3650 -out crl-dupont-revoked.pem 2>/dev/null
echo "PKI written to $(pwd)"
