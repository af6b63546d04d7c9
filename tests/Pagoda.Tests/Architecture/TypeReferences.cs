using Mono.Cecil;

namespace Pagoda.Tests.Architecture;

/// <summary>One use of a type by another: who uses it, what is used, and where (a member or "base type").</summary>
public sealed record TypeUse(string FromType, string FromNamespace, string ToType, string ToNamespace, string Where);

/// <summary>
/// Every type a compiled assembly's own types use, read from its metadata with Mono.Cecil: base types and
/// interfaces, fields, signatures, locals, and each instruction's type, method and field operands (so a
/// reference inside a method body counts as much as one in a signature). Compiler-generated nested types
/// (lambdas, iterators, async state machines) are attributed to the type they were written in.
/// </summary>
public static class TypeReferences
{
    /// <summary>Every use of a type of <paramref name="assemblyPath"/> by another of its types, from another namespace.</summary>
    public static List<TypeUse> CrossNamespaceUses(string assemblyPath)
    {
        using var module = ModuleDefinition.ReadModule(assemblyPath);
        var uses = new List<TypeUse>();
        foreach (var type in module.GetTypes())
        {
            var owner = Outermost(type);
            if (owner.Name == "<Module>" || owner.Namespace.Length == 0 && owner.Name.StartsWith('<'))
                continue;
            void Use(TypeReference? t, string where)
            {
                foreach (var used in Expand(t))
                {
                    if (used.Scope != module)
                        continue;
                    var target = Outermost(used);
                    if (target.Namespace != owner.Namespace && !target.Name.StartsWith('<'))
                        uses.Add(new TypeUse(owner.FullName, owner.Namespace, target.FullName, target.Namespace, where));
                }
            }
            Visit(type, Use);
        }
        return uses;
    }

    /// <summary>Names of the assemblies <paramref name="assemblyPath"/> references.</summary>
    public static List<string> AssemblyReferences(string assemblyPath)
    {
        using var module = ModuleDefinition.ReadModule(assemblyPath);
        return module.AssemblyReferences.Select(a => a.Name).ToList();
    }

    private static void Visit(TypeDefinition type, Action<TypeReference?, string> use)
    {
        use(type.BaseType, "base type");
        foreach (var i in type.Interfaces)
            use(i.InterfaceType, "interface");
        foreach (var g in type.GenericParameters)
            foreach (var c in g.Constraints)
                use(c.ConstraintType, "generic constraint");
        foreach (var f in type.Fields)
            use(f.FieldType, f.Name);
        foreach (var e in type.Events)
            use(e.EventType, e.Name);
        foreach (var p in type.Properties)
            use(p.PropertyType, p.Name);
        foreach (var m in type.Methods)
            VisitMethod(m, use);
    }

    private static void VisitMethod(MethodDefinition m, Action<TypeReference?, string> use)
    {
        string where = m.Name;
        use(m.ReturnType, where);
        foreach (var p in m.Parameters)
            use(p.ParameterType, where);
        foreach (var g in m.GenericParameters)
            foreach (var c in g.Constraints)
                use(c.ConstraintType, where);
        if (!m.HasBody)
            return;
        foreach (var v in m.Body.Variables)
            use(v.VariableType, where);
        foreach (var h in m.Body.ExceptionHandlers)
            use(h.CatchType, where);
        foreach (var ins in m.Body.Instructions)
        {
            switch (ins.Operand)
            {
                case TypeReference t:
                    use(t, where);
                    break;
                case MethodReference mr:
                    use(mr.DeclaringType, where);
                    use(mr.ReturnType, where);
                    foreach (var p in mr.Parameters)
                        use(p.ParameterType, where);
                    if (mr is GenericInstanceMethod gim)
                        foreach (var a in gim.GenericArguments)
                            use(a, where);
                    break;
                case FieldReference fr:
                    use(fr.DeclaringType, where);
                    use(fr.FieldType, where);
                    break;
                case CallSite cs:
                    use(cs.ReturnType, where);
                    break;
            }
        }
    }

    // The named types inside a reference: element types of arrays, pointers and by-refs, and generic arguments.
    private static IEnumerable<TypeReference> Expand(TypeReference? t)
    {
        switch (t)
        {
            case null or GenericParameter:
                yield break;
            case GenericInstanceType g:
                foreach (var x in Expand(g.ElementType))
                    yield return x;
                foreach (var a in g.GenericArguments)
                    foreach (var x in Expand(a))
                        yield return x;
                yield break;
            case TypeSpecification s:
                foreach (var x in Expand(s.ElementType))
                    yield return x;
                yield break;
            default:
                yield return t;
                yield break;
        }
    }

    private static TypeReference Outermost(TypeReference t)
    {
        while (t.DeclaringType != null)
            t = t.DeclaringType;
        return t;
    }
}
