// Converts SFDX source to Metadata API format with @salesforce/source-deploy-retrieve, the
// library behind `sf project convert source` and `sf project deploy start`.
// Usage: node convert.mjs SOURCE_DIR OUTPUT_DIR API_VERSION
import { ComponentSet, MetadataConverter } from '@salesforce/source-deploy-retrieve';

const [source, output, version] = process.argv.slice(2);
const components = ComponentSet.fromSource(source);
components.sourceApiVersion = version;
components.apiVersion = version;
await new MetadataConverter().convert(components, 'metadata', {
  type: 'directory',
  outputDirectory: output,
  genUniqueDir: false,
});
