/**
 * The registry behind each in-process `Repository` (library/), so that the fastify plugin (server/)
 * can serve a repository the caller loaded, without the registry becoming public API and without
 * either folder importing the other.
 */
import type { ModelRegistry } from '../repository/model-registry.js';

const registries = new WeakMap<object, ModelRegistry>();

export function attachRegistry(repository: object, registry: ModelRegistry): void {
  registries.set(repository, registry);
}

export function registryOf(repository: object): ModelRegistry {
  const registry = registries.get(repository);
  if (registry === undefined) throw new TypeError('expected a Repository from loadRepository() or loadModel()');
  return registry;
}
