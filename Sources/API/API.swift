// The API target holds only code that the OpenAPI generator derives from the top-level openapi.yaml.
